"""Instruction templates (data, one Jinja2 file per task style) and the one `render()` helper."""

from templates.library import Template, TemplateLibrary, TemplateError, default_library, render

__all__ = ["Template", "TemplateError", "TemplateLibrary", "default_library", "render"]
