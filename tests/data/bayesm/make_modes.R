# Draws with their means, for the modes table (issue 28): bayesm's rnmixGibbs on iris, K = 3,
# full covariance, under Prior.default (the mapping in README.md).
# Rscript tests/data/bayesm/make_modes.R from the repo root (about a minute on one core).
#
# make_bayesm.R keeps label-invariant statistics only; assigning draws to modes needs each
# draw's weights and means. This script runs the same sampler loop (make_bayesm.R's `loop` and
# chain start: uniform random labels, p = 1/K) for 4 chains x (2,000 burn-in + 40,000 sweeps),
# seeds 20270101-20270104, and keeps every 80th sweep: 500 draws per chain, 2,000 rows of
# iris_modes_draws.csv with chain, sweep, pi1..pi3 and mu<k>_<j> on bayesm's own labels (not
# sorted, not relabelled), and make_bayesm.R's loglik, logprior and logpost of the draw.
suppressMessages(library(bayesm))
source("tests/data/bayesm/make_bayesm.R")

FILE <- "tests/data/mclust/iris.csv"
K <- 3L
CHAINS <- 4L
BURNIN <- 2000L
SWEEPS <- 40000L
THIN <- 80L
SEED <- 20270101L

X <- as.matrix(read.csv(FILE, check.names = FALSE))
prior <- default_prior(X, K)
d <- ncol(X)
rows <- list()
for (ch in seq_len(CHAINS)) {
  set.seed(SEED + ch - 1L)
  z <- sample.int(K, nrow(X), replace = TRUE)
  p <- rep(1 / K, K)
  burn <- loop(X, prior, p, z, BURNIN)
  res <- loop(X, prior, burn$probdraw[BURNIN, ], burn$zdraw[BURNIN, ], SWEEPS)
  keep <- seq(THIN, SWEEPS, by = THIN)
  rows[[ch]] <- do.call(rbind, lapply(keep, function(r) {
    comps <- res$compdraw[[r]]
    pr <- res$probdraw[r, ]
    mu <- unlist(lapply(comps, function(cm) cm$mu))
    names(mu) <- paste0("mu", rep(seq_len(K), each = d), "_", rep(seq_len(d), K))
    st <- draw_stats(X, prior, pr, comps)
    data.frame(chain = ch, sweep = r, t(setNames(pr, paste0("pi", seq_len(K)))), t(mu),
               t(st[c("loglik", "logprior", "logpost")]))
  }))
}
out <- do.call(rbind, rows)
out[, -(1:2)] <- signif(out[, -(1:2)], 7)
write.csv(out, file.path(OUT, "iris_modes_draws.csv"), row.names = FALSE)
s <- t(apply(out[, paste0("pi", 1:K)], 1, sort, decreasing = TRUE))
nearer <- rowSums(sweep(s, 2, MAJOR)^2) < rowSums(sweep(s, 2, SPECIES)^2)
cat(sprintf("nearer (0.60, 0.33, 0.065) than the species: %.4f; by chain: %s\n", mean(nearer),
            paste(sprintf("%.3f", tapply(nearer, out$chain, mean)), collapse = " ")))
