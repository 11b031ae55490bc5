"""What comes in from monitoring: alert payloads parsed and mapped by rules (``alerts``) into
drafts a commander can declare from (``drafts``)."""
