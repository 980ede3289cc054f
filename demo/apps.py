from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo data and its loader (``manage.py demo``).

    Sits above every domain app: it may import all of them, and none of them
    imports it (``tests/test_architecture.py`` checks both).
    """

    name = "demo"
    verbose_name = "Demo data"
