"""The canonical data model: schemas, validators, states, code lists, money, TMF conversion."""
