"""A token's roles as the actor cache answers them, for the tests of API and OAuth tokens alike."""

from apps.accounts import actors


def roles_of_token(raw: str, **kwargs) -> set[str] | None:
    """The roles a raw token's actor has now, or None when the token is refused."""
    actor = actors.actor_for_token(raw, **kwargs)
    return None if actor is None else set(actor.roles)
