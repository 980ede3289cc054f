"""The web app's URLs and the serving process's, together: a test that calls the API
(promote) and the serving endpoint in one process."""

from config import serve_urls
from config.urls import urlpatterns as web

urlpatterns = [*serve_urls.urlpatterns[:1], *web]
