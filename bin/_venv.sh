# Sourced by bin/console and bin/test: make .venv (or $VENV) and install a
# requirements file into it when that file changed since the last install.
REQS="$1"
VENV="${VENV:-$PWD/.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x "$VENV/bin/python" ]; then
  echo "» creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
STAMP="$VENV/.installed-$(basename "$REQS")"
WANT="$(cat requirements*.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "» installing $REQS"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
