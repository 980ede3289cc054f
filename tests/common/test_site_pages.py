"""What every page shares: English names in the admin, a favicon wherever a browser asks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib import admin
from django.test import Client

pytestmark = pytest.mark.django_db

# Django's default plural appends "s": "aliass", "prediction batchs", "sign offs".
BAD_PLURAL = re.compile(r"(ss|xs|zs|chs|shs|[^aeiou]ys)$")


def test_every_admin_model_has_a_plural_english_name():
    names = {model: model._meta.verbose_name_plural for model in admin.site._registry}
    wrong = {m.__name__: str(n) for m, n in names.items() if BAD_PLURAL.search(str(n))}
    assert wrong == {}
    by_name = {m.__name__: str(n) for m, n in names.items()}
    assert by_name["Alias"] == "aliases"
    assert by_name["PredictionBatch"] == "prediction batches"
    assert by_name["LabelBatch"] == "label batches"
    assert (by_name["SignOff"], by_name["Evidence"]) == ("sign-offs", "evidence")


def test_the_admin_index_shows_the_plural_names(personas: Any):
    from django.contrib.auth.models import User

    User.objects.create_superuser("root", "root@example.com", "correct-horse-9")
    client = Client()
    client.login(username="root", password="correct-horse-9")
    page = client.get("/admin/").content.decode()
    for name in ("Aliases", "Prediction batches", "Label batches", "Sign-offs"):
        assert f">{name}<" in page
    assert not re.search(r">[A-Z][a-z ]*(ss|chs)<", page)


def test_favicon_ico_answers_on_the_site_root_and_pages_link_it(personas: Any):
    client = Client()
    answer = client.get("/favicon.ico")
    assert answer.status_code == 301
    assert answer["Location"].endswith(".ico")
    icon = client.get(answer["Location"])
    assert icon.status_code == 200
    body = b"".join(icon.streaming_content) if icon.streaming else icon.content
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert icon["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    login_page = client.get("/login/").content.decode()
    assert f'<link rel="icon" href="{answer["Location"]}"' in login_page
    client.force_login(personas.owner)
    assert f'<link rel="icon" href="{answer["Location"]}"' in client.get("/").content.decode()
