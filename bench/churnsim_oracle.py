"""ChurnSim with a recorder of its own churn probabilities: run in fightchurn's environment, not cse's.

    .venv-fightchurn/bin/python bench/churnsim_oracle.py model=socialnet7 random_seed=7 ...   (ChurnSim's overrides)

bench/churnsim_ceiling.py starts this instead of `python -m fightchurn.churnsim.churnsim` (through
bench/fightchurn_data.py's `simulate`), so each part runs the unchanged simulator. The package is not edited: a
subclass of `ChurnSimulation` is put in the module's place before ChurnSim's own entry point runs, and after each
customer's month end (where ChurnSim draws churn with the probability its utility model gives) it appends one row
to `$CHURN_OUT_DIR/oracle.csv`. It only reads the customer and calls the utility model's pure functions, drawing no
random number, so the same seed gives the same customers, events and terms as a plain run.

Per customer and decision (the renewal date at the end of each simulated month):

* `p_full`: the probability ChurnSim drew churn with (its utility from the event counts accumulated since the
  start, times the customer's hidden satisfaction propensity);
* `p_counts`: the same utility without the hidden factor (propensity 1), from the same realised event counts;
* `p_rates`: the same without the hidden factor, from the customer's true monthly behaviour rates times the months
  elapsed instead of the realised counts (the expected counts);
* `u_full`, `u_counts`, `satisfaction` and `churned`, so the reader can check `u_full` is `u_counts` scaled by the
  propensity and compute its own predictors of the hidden factor.

`oracle.json` beside it holds the churn transition's scale and offset, the logistic that maps utility to probability.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from types import SimpleNamespace

from fightchurn.churnsim import churnsim

FIELDS = ["customer", "start_date", "decision_date", "month", "u_full", "u_counts", "u_rates", "satisfaction",
          "p_full", "p_counts", "p_rates", "churned"]  # fmt: skip


class OracleSimulation(churnsim.ChurnSimulation):
    """ChurnSim unchanged, plus a row per customer month end (see the module doc)."""

    def __init__(self, args) -> None:
        super().__init__(args)
        if args.acausal_churn > 0:
            raise SystemExit("acausal churn bypasses the utility model: no probability to record")
        out = Path(os.environ["CHURN_OUT_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        self.oracle_path = out / "oracle.csv"
        with self.oracle_path.open("w", newline="") as file:
            csv.writer(file).writerow(FIELDS)
        churn = args.transition.churn
        (out / "oracle.json").write_text(json.dumps({"scale": churn.scale, "offset": churn.offset}))

    def _utility(self, customer, counts) -> float:
        """The utility model's value of `counts` for this customer without the hidden satisfaction factor."""
        view = SimpleNamespace(event_counts=counts, mrr=customer.mrr, discount=customer.discount,
                               satisfaction_propensity=1.0)  # fmt: skip
        return float(self.util_mod.utility_function(view))

    def customer_month_end(self, customer, next_month):
        churned = super().customer_month_end(customer, next_month)
        months = (next_month - customer.start_date).days / 30.0
        u_counts = self._utility(customer, customer.event_counts)
        u_rates = self._utility(customer, customer.behavior_rates["monthly_rate"].to_numpy(dtype=float) * months)
        probability = self.util_mod.churn_probability
        row = [customer.id, customer.start_date, next_month, customer.num_months, customer.current_utility, u_counts,
               u_rates, customer.satisfaction_propensity, probability(customer.current_utility),
               probability(u_counts), probability(u_rates), int(churned)]  # fmt: skip
        with self.oracle_path.open("a", newline="") as file:
            csv.writer(file).writerow(row)
        return churned


if __name__ == "__main__":
    churnsim.ChurnSimulation = OracleSimulation
    churnsim.run_churn_simulation()
