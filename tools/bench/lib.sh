# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Helpers shared by the benchmark scripts (sourced, never run).

# Sorted numbers on stdin -> "median lo hi min max level": [lo, hi] is the
# order-statistic CI of the median, ranks k and n+1-k with the largest k
# such that P(Bin(n, 1/2) < k) <= 0.025; level is its exact coverage.
qstats() {
	sort -g | awk '{ v[NR] = $1 }
	END {
		n = NR
		med = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		c = 1; cum = 0; k = 0
		for (j = 0; j < n; j++) {
			pmf = c * 0.5 ^ n
			if (cum + pmf > 0.025)
				break
			cum += pmf; k = j + 1; c = c * (n - j) / (j + 1)
		}
		if (k == 0) { lo = v[1]; hi = v[n]; level = 0 }
		else { lo = v[k]; hi = v[n + 1 - k]; level = 1 - 2 * cum }
		printf "%s %s %s %s %s %.3f\n", med, lo, hi, v[1], v[n], level
	}'
}
