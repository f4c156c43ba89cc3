"""``esb new``: scaffolding for a new system (its endpoints) and a new route (route, dead letters, mappings).

What is generated passes ``esb lint`` and ``esb test`` as it stands; nothing existing is overwritten.
"""
