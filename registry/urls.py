from django.urls import path

from registry import timeline_views, views

app_name = "registry"
urlpatterns = [
    path("models/", views.model_list, name="model-list"),
    path("models/<slug:name>/", views.model_detail, name="model-detail"),
    path("models/<slug:name>/versions/<int:number>/", views.version_detail, name="version-detail"),
    path("models/<slug:name>/aliases/", views.alias_move, name="alias-move"),
    path("models/<slug:name>/timeline/", timeline_views.timeline_fragment, name="model-timeline"),
]
