"""`fleetctl import`: turn what already runs in an account into manifests, without recreating or rotating it.

Most fleets were built by scripts or by hand before fleetctl existed. An operator adopts fleetctl only if it can
take over that state as it is: the import reads the actual state in bulk (through the providers' own `read`),
writes manifests for which the next `fleetctl plan` shows no changes, never writes a secret, and marks
resources as managed only when asked (`--adopt`), as a planned change the operator reviews and applies.

Modules: `model` (values), `select` (filters, reference closure, renames), `yamlout` (a fast, safe YAML
emitter), `writer` (file layout and summaries), `checkpoint` (resumable reads), `registry` (one importer per
provider: the extension point), `aws` and `azure` (the importers and their exporter tables), `core` (the
pipeline) and `cli`. Calls are paced by the providers' own limiter (engine/ratelimit.py).
"""
