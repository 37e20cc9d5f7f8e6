from django import template

register = template.Library()


@register.filter
def relative(key: str, prefix: str) -> str:
    """A key as shown inside its folder: `a/b/c.txt` under `a/b/` is `c.txt`."""
    rest = key[len(prefix) :] if prefix and key.startswith(prefix) else key
    return rest or key
