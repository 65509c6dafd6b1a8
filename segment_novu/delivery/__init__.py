"""Stage 3, operations → results within Segment's deadline: order, bulk, rate budgets, ledger."""
