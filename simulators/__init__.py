"""The simulated peripheral systems: part of the product, used by `make run`, `esb demo` and e2e tests.

They speak the real protocols: the simulated CRM publishes SiebelMessage XML on its queue exactly as the
Siebel EAI JMS transport would, and the simulated IOM consumes order requests from its queue, acking
only what it has recorded, and ignoring a message id it has already seen (an idempotent receiver).
"""
