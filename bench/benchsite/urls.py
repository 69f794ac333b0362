from django.urls import path

from .views import VIEWS

urlpatterns = [path(f"{name}/", view) for name, view in VIEWS.items()]
