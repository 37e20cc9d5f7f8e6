from django.apps import AppConfig


class CommsConfig(AppConfig):
    name = "apps.comms"
