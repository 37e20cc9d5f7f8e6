"""The menus on every page: their URLs are reversed once per process, and still follow the
script prefix the console is served under (SCRIPT_NAME, FORCE_SCRIPT_NAME)."""

import re

from django.urls import set_script_prefix


def menu(html: str) -> list[str]:
    main = re.search(r'<nav class="nav" aria-label="Main">(.*?)</nav>', html, re.S).group(1)
    return re.findall(r'href="([^"]+)"', main)


def test_menu_links_follow_the_script_prefix(client_as):
    client = client_as("viewer")
    plain = client.get("/monitoring/dashboards/").content.decode()  # the menus' URLs are reversed here
    # Django's handlers set the prefix of each request (the test client does not: set here).
    set_script_prefix("/ops/")
    try:
        prefixed = client.get("/monitoring/dashboards/").content.decode()
    finally:
        set_script_prefix("/")
    assert "/monitoring/" in menu(plain)
    assert menu(prefixed) == ["/ops" + url for url in menu(plain)]
    assert 'href="/ops/monitoring/dashboards/"' in prefixed  # the sub-menu's entry too
