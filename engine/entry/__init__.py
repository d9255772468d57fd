"""Entry points: the CLI, the scheduler, scenario replay and the bid importer. They parse
input and render output; the work is done by engine.commands."""
