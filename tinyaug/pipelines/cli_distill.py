"""Commands of this area; see tinyaug.pipelines.cli."""

COMMANDS: list = []
