"""Reads stancemap's Parquet tables with pyarrow and prints what a user would see
of them as JSON: each file's rows, columns and types, and a few values."""
import json
import sys

import pyarrow.parquet as pq

out = {}
for name in ("claims", "groups", "pairs"):
    table = pq.read_table(f"{sys.argv[1]}/{name}.parquet")
    out[name] = {
        "rows": table.num_rows,
        "columns": {f.name: str(f.type) for f in table.schema},
        "values": table.slice(0, 3).to_pylist(),
    }
claims = pq.read_table(f"{sys.argv[1]}/claims.parquet").to_pydict()
out["claims"]["groups_used"] = sorted({g for g in claims["group"] if g is not None})
groups = pq.read_table(f"{sys.argv[1]}/groups.parquet").to_pydict()
out["groups"]["shared_figures"] = groups["shared_figures"]
if "embedding" in claims:
    out["claims"]["embedding_norms"] = [
        sum(x * x for x in row) ** 0.5 for row in claims["embedding"][:5]
    ]
print(json.dumps(out, default=str))
