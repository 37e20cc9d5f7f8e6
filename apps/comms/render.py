"""One message, rendered for each channel: Slack blocks, a Teams Adaptive Card,
an email (text + HTML), an SMS and a signed webhook's JSON."""

from __future__ import annotations

from datetime import datetime

from django.template.loader import render_to_string
from pydantic import BaseModel, Field

SMS_LIMIT = 600  # Twilio splits long bodies into segments; keep pages short
ICON = {"critical": "🔴", "warning": "🟠", "info": "🔵"}


class Message(BaseModel):
    """What is said, independent of the channel. Never holds credentials."""

    title: str = Field(max_length=300)
    text: str = Field("", max_length=10000)
    severity: str = ""
    priority: str = "normal"
    link: str = ""
    fields: dict[str, str] = Field(default_factory=dict)
    event: str = Field("message", description="e.g. incident.opened, deployment.progress, notification.")
    data: dict = Field(default_factory=dict, description="Structured payload for webhooks.")

    @property
    def headline(self) -> str:
        prefix = f"{ICON.get(self.severity, '')} [{self.severity.upper()}] " if self.severity else ""
        return (prefix + self.title).strip()


def slack(message: Message) -> tuple[str, list]:
    """The fallback text and the blocks of a Slack message."""
    blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": message.headline[:150], "emoji": True}}]
    if message.text:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": message.text[:3000]}})
    if message.fields:
        items = list(message.fields.items())[:10]
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]} for k, v in items]})
    if message.link:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{message.link}|Open in the ops console>"}]})
    return f"{message.headline}\n{message.text}".strip()[:4000], blocks


def teams(message: Message) -> dict:
    """An Adaptive Card in the envelope Teams incoming webhooks accept."""
    body: list[dict] = [{"type": "TextBlock", "text": message.headline, "weight": "Bolder", "size": "Medium", "wrap": True}]
    if message.text:
        body.append({"type": "TextBlock", "text": message.text, "wrap": True})
    if message.fields:
        body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in message.fields.items()]})
    card = {"type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "version": "1.4", "body": body}
    if message.link:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in the ops console", "url": message.link}]
    return {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]}


def email(message: Message) -> tuple[str, str, str]:
    """Subject, plain text and HTML."""
    subject = (f"[{message.severity.upper()}] " if message.severity else "") + message.title
    lines = [message.title, "", message.text] + [f"{k}: {v}" for k, v in message.fields.items()]
    if message.link:
        lines += ["", message.link]
    html = render_to_string("comms/email.html", {"message": message})
    return subject[:250], "\n".join(lines).strip() + "\n", html


def sms(message: Message) -> str:
    text = f"{message.headline}: {message.text}" if message.text else message.headline
    return text if len(text) <= SMS_LIMIT else text[: SMS_LIMIT - 1] + "…"


def webhook(message: Message, delivery_id: str, sent_at: datetime) -> dict:
    return {"id": delivery_id, "sent_at": sent_at.isoformat(), **message.model_dump()}
