"""consultflow: the engine for consultations run in rounds (参与—反馈—再参与—再反馈)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
