"""The scenario language: the YAML models, matchers, templates, the loader, the step kinds
(``steps/``), the simulated front end, and the view of a run the checks read."""
