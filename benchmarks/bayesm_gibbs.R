# One chain of bayesm's conjugate Gibbs sampler for a normal mixture, timed, as a baseline for the
# suite's Gibbs sampler (issue 28).
#
#   Rscript benchmarks/bayesm_gibbs.R data.csv K sweeps [keep] [seed]
#
# data.csv has a header row; every column is used. The prior is models.Prior.default(X, K, "full")
# (alpha = 1): Mubar = colMeans(X), A = 0.01, nu = d + 2, V = cov(X) / K^(2/d), a = rep(1, K)
# (tests/data/bayesm/check_prior.R checks the mapping). rnmixGibbs starts from its own default
# (p = 1/K, z = 1, 2, ..., K, 1, 2, ...). keep thins the stored draws (memory: rnmixGibbs stores
# N labels per kept draw); seconds_per_sweep counts every sweep.
#
# Prints one JSON line: seconds of the rnmixGibbs call and per sweep, and the effective sample
# sizes of the mixture log-likelihood sum_n log sum_k pi_k N(x_n | mu_k, Sigma_k) and of the largest
# weight max_k pi_k, over the second half of the kept draws (Geyer's initial monotone sequence
# estimator on the one chain), and those ESS per second of sampling. The first half is burn-in:
# at N = 100,000, d = 5, K = 4 the log-likelihood took 10-25 sweeps to reach its stationary level.
suppressMessages(library(bayesm))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 3) stop("usage: Rscript benchmarks/bayesm_gibbs.R data.csv K sweeps [keep] [seed]")
X <- as.matrix(read.csv(args[1], check.names = FALSE))
K <- as.integer(args[2]); sweeps <- as.integer(args[3])
keep <- if (length(args) >= 4) as.integer(args[4]) else 1L
seed <- if (length(args) >= 5) as.integer(args[5]) else 20261228L
N <- nrow(X); d <- ncol(X)

prior <- list(ncomp = K, Mubar = matrix(colMeans(X), nrow = 1), A = matrix(0.01), nu = d + 2,
              V = cov(X) / K^(2 / d), a = rep(1, K))

set.seed(seed)
t0 <- proc.time()[["elapsed"]]
invisible(capture.output(
  out <- rnmixGibbs(Data = list(y = X), Prior = prior, Mcmc = list(R = sweeps, keep = keep, nprint = 0))$nmix
))
seconds <- proc.time()[["elapsed"]] - t0

loglik <- function(p, comps) {
  L <- vapply(seq_along(comps), function(k) {
    ri <- comps[[k]]$rooti
    Z <- (X - rep(comps[[k]]$mu, each = N)) %*% ri
    log(p[k]) - d / 2 * log(2 * pi) + sum(log(diag(ri))) - 0.5 * rowSums(Z * Z)
  }, numeric(N))
  m <- do.call(pmax, split(L, col(L)))
  sum(m + log(rowSums(exp(L - m))))
}

# Geyer (1992) initial monotone sequence estimator of the ESS of one chain.
ess <- function(x) {
  n <- length(x)
  if (n < 4 || var(x) == 0) return(NA_real_)
  x <- x - mean(x)
  f <- fft(c(x, numeric(n)))
  acov <- Re(fft(Mod(f)^2, inverse = TRUE))[seq_len(n)] / (2 * n) / n
  rho <- acov / acov[1]
  m <- floor(n / 2)
  G <- rho[2 * seq_len(m) - 1] + rho[2 * seq_len(m)]   # Gamma_0, Gamma_1, ...
  first_neg <- which(G <= 0)[1]
  G <- G[seq_len(if (is.na(first_neg)) m else first_neg - 1)]
  G <- cummin(G)
  tau <- -1 + 2 * sum(G)
  n / max(tau, 1 / log10(n))
}

draws <- nrow(out$probdraw)
use <- seq.int(floor(draws / 2) + 1, draws)
ll <- vapply(use, function(r) loglik(out$probdraw[r, ], out$compdraw[[r]]), 0)
pmaxw <- apply(out$probdraw[use, , drop = FALSE], 1, max)
ess_ll <- ess(ll); ess_pi <- ess(pmaxw)

res <- list(
  sampler = "bayesm::rnmixGibbs", data = args[1], n = N, d = d, K = K, sweeps = sweeps,
  keep = keep, seed = seed, seconds = seconds, seconds_per_sweep = seconds / sweeps,
  draws_used = length(use), ess_loglik = ess_ll, ess_pi_max = ess_pi,
  ess_per_second_loglik = ess_ll / seconds, ess_per_second_pi_max = ess_pi / seconds,
  mean_loglik = mean(ll), mean_pi_max = mean(pmaxw),
  ess_method = "Geyer initial monotone sequence, one chain, second half of the kept draws",
  R = R.version.string, bayesm = as.character(packageVersion("bayesm")))
fmt <- function(v) if (is.character(v)) sprintf("\"%s\"", v) else if (is.na(v)) "null" else sprintf("%.10g", v)
cat("{", paste(sprintf("\"%s\": %s", names(res), vapply(res, fmt, "")), collapse = ", "), "}\n", sep = "")
