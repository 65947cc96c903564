"""Solves a `tandem solve` instance with OR-tools' SimpleMinCostFlow.

Max-weight capacitated assignment as a min-cost flow: every mentee has supply 1 and an arc to
each allowed mentor (cost -weight) plus an arc to the sink (cost 0: stays unmatched); every
mentor has an arc to the sink with its capacity. Prints the same JSON as `tandem solve --json`.
Parsing is not timed.
"""
import json
import sys
import time

from ortools.graph.python import min_cost_flow


def read(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                rows.append(line)
    n, m, k = map(int, rows[0].split())
    caps = list(map(int, rows[1].split())) if m else []
    arcs = [tuple(map(int, r.split())) for r in rows[2 : 2 + k]]
    return n, m, caps, arcs


def main():
    n, m, caps, arcs = read(sys.argv[1])
    sink = n + m
    flow = min_cost_flow.SimpleMinCostFlow()
    tails, heads, capacities, costs = [], [], [], []
    for i, j, w in arcs:
        tails.append(i); heads.append(n + j); capacities.append(1); costs.append(-w)
    for i in range(n):
        tails.append(i); heads.append(sink); capacities.append(1); costs.append(0)
    for j in range(m):
        tails.append(n + j); heads.append(sink); capacities.append(caps[j]); costs.append(0)
    import numpy as np
    flow.add_arcs_with_capacity_and_unit_cost(
        np.array(tails), np.array(heads), np.array(capacities), np.array(costs)
    )
    for i in range(n):
        flow.set_node_supply(i, 1)
    flow.set_node_supply(sink, -n)
    start = time.perf_counter()
    status = flow.solve()
    solve_ms = (time.perf_counter() - start) * 1000
    if status != flow.OPTIMAL:
        print(json.dumps({"status": int(status)}))
        sys.exit(1)
    matched = sum(1 for a in range(len(arcs)) if flow.flow(a) > 0)
    print(json.dumps({"objective": -flow.optimal_cost(), "matched": matched, "solve_ms": round(solve_ms, 1)}))


if __name__ == "__main__":
    main()
