"""Settings: everything comes from the environment, with defaults that run on
one machine with nothing installed beforehand (SQLite + an embedded Redis
started by `bin/console`). See README "Configuration".

DJANGO_SETTINGS_MODULE is this package. Each module below owns one part and imports
from the others by name what it builds on; this one only puts them together."""

# Star imports, here only: Django reads every UPPERCASE name of this one module, and listing the
# ~190 of them again would be a second copy to keep in step. No two modules define the same name.
# The order is the order a bad configuration is refused in: the environment's name, then
# production's safety (web_security), then the stores, then SSO; beat's schedule (jobs) comes last.
# isort: off
from .environment import *
from .web_security import *
from .database import *
from .cache import *
from .accounts import *
from .framework import *
from .console import *
from .audit import *
from .monitoring import *
from .security import *
from .infrastructure import *
from .storage import *
from .comms import *
from .mcp import *
from .oauth import *
from .jobs import *
