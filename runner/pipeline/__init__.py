"""Pipeline files: YAML with positions -> a validated, frozen ``Pipeline``, or every problem at once.

``loader`` is the entry point; ``yamlpos`` reads YAML safely with positions, ``schema`` and
``schema_problems`` check it against the JSON Schema, ``rules`` adds the cross-field rules,
``filechecks`` and ``images`` check the files it names, ``problems`` formats what is wrong, and
``spec`` holds the validated result. Imports nothing from the rest of bria-run but ``errors``.
"""
