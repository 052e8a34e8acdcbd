"""Rendering reports: terminal text, Markdown, CSV for Excel, XLSX, JSON, and PNG charts."""
