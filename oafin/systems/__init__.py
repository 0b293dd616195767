"""One folder per source system: its client, settings, sandbox twin and write-back actions."""
