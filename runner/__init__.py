"""bria-run: drive Bria's Tailored Generation API from one version-controlled YAML file."""

__version__ = "0.1.0"
