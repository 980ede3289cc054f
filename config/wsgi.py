import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# A web process killed mid-upload left its spooled file behind: delete those
# older than the longest request now (beat sweeps periodically too).
from common.uploads import upload_tmp_sweep  # noqa: E402  (needs the app loaded)

upload_tmp_sweep()
