"""YAML for scenarios and rule files, read the YAML 1.2 way for booleans.

PyYAML follows YAML 1.1, where ``on``, ``off``, ``yes`` and ``no`` are
booleans: a scenario step's ``on: 2011-04-20`` key would become ``True``.
This loader treats only ``true``/``false`` as booleans; ``yes``/``no`` stay
text and the command arguments read them (see engine.commands.args)."""

from __future__ import annotations

import re
from typing import Any

import yaml


class QuorumLoader(yaml.SafeLoader):
    pass


QuorumLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
QuorumLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=QuorumLoader)  # noqa: S506  (a SafeLoader subclass)
