"""Loading and checking the integration project: settings, systems, routes."""
