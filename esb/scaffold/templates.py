"""The text ``esb new`` writes: YAML snippets for systems.yaml and routes.yaml, mapping skeletons, tests,
samples. ``string.Template`` placeholders (``$name``); every snippet is valid as it stands."""

from __future__ import annotations

from string import Template

SYSTEM = Template("""\
$name:
  name: $name
  description: $name
  endpoints:
    messages_out:                     # what $name sends the hub: a route's from
      adapter: queue
      queue: $name.messages.out
      format: json
      description: Messages $name sends to the hub (made by esb new system; rename and describe them)
    messages_in:                      # what the hub sends $name: a route's to
      adapter: queue
      queue: $name.messages.in
      format: json
      description: Messages the hub sends to $name (made by esb new system; rename and describe them)
""")

DEAD_LETTER = Template("""\
$route:
  adapter: queue
  queue: esb.dlq.$route
  format: bytes
""")

ROUTE = Template("""\
- id: $route
  description: $source to $target (made by esb new route; fill in the two mappings)
  from: $source
  business_keys:                      # what esb trace finds the message by (JMESPath after each step)
    record_id: body.id
  steps:
    - transform: $route/to_canonical    # $source's format -> the canonical form
    - transform: $route/from_canonical  # the canonical form -> $target's format
  to: $target
  on_error:
    redeliver: {max: 5, backoff: exponential, initial: 1s, max_delay: 60s}
    dead_letter: dlq.$route
""")

TO_CANONICAL_JSON = Template("""\
# $source (JSON) -> the canonical form. Made by `esb new route $route`: map every field $source sends
# (target path: {from: JMESPath over the body, fn: [...]}, see docs/transforms.md), then name the
# canonical schema (output_schema: entity.v1) and add `- validate: entity.v1` to the route after this step.
kind: jmespath
description: $source message to the canonical form (skeleton made by esb new route)
input: json
output: json
rules:
  id: {from: id, required: true, fn: [trim]}
  name: {from: name, fn: [clean]}
""")

TO_CANONICAL_XML = Template("""\
# $source (XML) -> the canonical form. Made by `esb new route $route`: map every field $source sends
# (target path: {from: XPath relative to the root element, fn: [...]}, see docs/transforms.md), then name
# the canonical schema (output_schema: entity.v1) and add `- validate: entity.v1` to the route.
kind: xpath-to-json
description: $source message to the canonical form (skeleton made by esb new route)
input: xml
output: json
accepts:
  root: Message
rules:
  id: {from: Id, required: true, fn: [trim]}
  name: {from: Name, fn: [clean]}
""")

FROM_CANONICAL = Template("""\
# The canonical form -> what $target expects. Made by `esb new route $route`: write $target's fields from
# the canonical ones (see docs/transforms.md).
kind: jmespath
description: canonical form to the $target message (skeleton made by esb new route)
input: json
output: json
rules:
  id: {from: id, required: true}
  name: name
""")

TO_CANONICAL_TEST = Template("""\
# Cases for $route/to_canonical, run by `esb test`. Replace the sample with a real message of $source.
cases:
  - name: the sample message becomes the canonical form
    input: samples/sample.$ext
    expect: samples/sample.canonical.json
  - name: a message without an id is refused, naming the field
    input_inline: '$no_id'
    error: {type: MappingError, contains: id}
""")

FROM_CANONICAL_TEST = Template("""\
# Cases for $route/from_canonical, run by `esb test`.
cases:
  - name: the canonical sample becomes $target's message
    input: samples/sample.canonical.json
    expect: samples/sample.out.json
""")

SAMPLE_JSON = '{"id": " EXAMPLE-1 ", "name": "An  example"}\n'
SAMPLE_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Message>\n  <Id> EXAMPLE-1 </Id>\n  <Name>An  example</Name>\n'
    "</Message>\n"
)
NO_ID = {"json": '{"name": "no id"}', "xml": "<Message><Name>no id</Name></Message>"}
SAMPLE_CANONICAL = '{\n  "id": "EXAMPLE-1",\n  "name": "An example"\n}\n'
SAMPLE_OUT = SAMPLE_CANONICAL
