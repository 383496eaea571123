# Reference posterior summaries from bayesm's conjugate Gibbs sampler for normal mixtures
# (Rscript tests/data/bayesm/make_bayesm.R from the repo root; a few minutes on one core).
#
# Writes, per data set, <name>_summary.csv (label-invariant summaries) and <name>_meta.json
# (versions, seeds, sweeps, burn-in, timing, hyperparameters). Python tests read these files and
# need no R. See README.md.
#
# Model and prior: models.Prior.default(X, K, "full") with alpha = 1, in bayesm's terms
#   Mubar = m0 = colMeans(X), A = kappa0 = 0.01, nu = nu0 = d + 2, V = Psi0 = cov(X) / K^(2/d),
#   a = rep(alpha, K)   (checked by check_prior.R)
# so mu_k | Sigma_k ~ N(m0, Sigma_k / kappa0), Sigma_k ~ scipy's invwishart(df = nu0, scale = Psi0),
# pi ~ Dirichlet(alpha).
#
# Sampler: bayesm::rnmixGibbs is argument checks plus
#   rnmixGibbs_rcpp_loop(y, Mubar, A, nu, V, a, p = rep(1/K, K), z = rep(1:K, ...)[1:N], R, keep, nprint).
# Storing 100,000 kept draws of z (N per draw) and of the components at once costs hundreds of MB,
# so each chain runs that same loop in chunks of CHUNK sweeps, each chunk starting from the
# previous chunk's last (p, z) (the sampler's whole state: a sweep draws the components from z,
# then z from the components and p, then p from z), and is summarised chunk by chunk: every
# sweep after burn-in is kept, none thinned. check_loop() confirms, for a short run, that the
# chunked loop gives rnmixGibbs's draws bit for bit. Each chain starts from its own random labels.
#
# Per draw (p, mu_k, Sigma_k), with Sigma_k^-1 = rooti_k rooti_k' (bayesm stores rooti, the
# inverse of Sigma_k's upper Cholesky factor):
#   pi1 >= pi2 >= pi3   the sorted weights
#   loglik              sum_n log sum_k pi_k N(x_n | mu_k, Sigma_k)
#   logprior            log Dirichlet(pi | a) + sum_k [log N(mu_k | m0, Sigma_k / kappa0)
#                       + log IW(Sigma_k | nu0, Psi0)], every constant included (scipy's densities)
#   logpost             loglik + logprior (the unnormalised log posterior of (pi, mu, Sigma))
# and, on iris only (the set's `modes`), indicators whose means are shares of draws:
#   near_major          1 if |pi1 - 0.60|, |pi2 - 0.33|, |pi3 - 0.065| are all <= 0.05, else 0
#   near_species        1 if |pi_j - 1/3| <= 0.05 for all three, else 0
#   nearer_major        1 if the sorted weights are nearer (Euclidean) to (0.60, 0.33, 0.065)
#                       than to (1/3, 1/3, 1/3), else 0
# Summaries pool the chains: mean, sd, quantiles (R's type 7), and batch-means MCSE and ESS
# (coda is not a dependency of bayesm): batches of b = floor(sqrt(n)) consecutive draws within
# each chain, all chains' batches pooled, MCSE = sqrt(b var(batch means) / n_draws),
# ESS = n_draws sd^2 / (b var(batch means)). chain1..chain4 are the per-chain means.
# <name>_draws.csv keeps every THIN-th draw's statistics (chain, sweep after burn-in, pi1..logpost)
# for distributional checks (a modes table, two-sample tests); the summaries use every draw.
suppressMessages(library(bayesm))

OUT <- "tests/data/bayesm"
CHUNK <- 10000L
MAJOR <- c(0.60, 0.33, 0.065)
SPECIES <- rep(1 / 3, 3)

SETS <- list(
  iris = list(file = "tests/data/mclust/iris.csv", K = 3L, chains = 4L, sweeps = 100000L,
              burnin = 2000L, seed = 20261228L, modes = TRUE, thin = 200L),
  sim = list(file = "tests/data/bayesm/sim.csv", K = 3L, chains = 4L, sweeps = 50000L,
             burnin = 2000L, seed = 20261229L, modes = FALSE, thin = 100L)
)

default_prior <- function(X, K, alpha = 1) {
  d <- ncol(X)
  list(Mubar = matrix(colMeans(X), nrow = 1), A = matrix(0.01), nu = d + 2,
       V = cov(X) / K^(2 / d), a = rep(alpha, K))
}

lmvgamma <- function(x, d) d * (d - 1) / 4 * log(pi) + sum(lgamma(x + (1 - seq_len(d)) / 2))

# Log densities of one draw: p (K), comps (list of K lists with mu and rooti).
draw_loglik <- function(X, p, comps) {
  d <- ncol(X)
  L <- vapply(seq_along(comps), function(k) {
    ri <- comps[[k]]$rooti
    Z <- (X - rep(comps[[k]]$mu, each = nrow(X))) %*% ri
    log(p[k]) - d / 2 * log(2 * pi) + sum(log(diag(ri))) - 0.5 * rowSums(Z * Z)
  }, numeric(nrow(X)))
  m <- do.call(pmax, split(L, col(L)))
  sum(m + log(rowSums(exp(L - m))))
}

draw_logprior <- function(prior, p, comps) {
  a <- prior$a; m0 <- c(prior$Mubar); kappa0 <- c(prior$A); nu <- prior$nu; Psi <- prior$V
  d <- length(m0)
  lp <- lgamma(sum(a)) - sum(lgamma(a)) + sum((a - 1) * log(p))
  iw_const <- nu / 2 * c(determinant(Psi)$modulus) - nu * d / 2 * log(2) - lmvgamma(nu / 2, d)
  for (comp in comps) {
    ri <- comp$rooti
    logdet_prec <- 2 * sum(log(diag(ri)))              # log |Sigma^-1|
    u <- c(crossprod(ri, comp$mu - m0))                  # rooti' (mu - m0)
    lp <- lp - d / 2 * log(2 * pi) + d / 2 * log(kappa0) + logdet_prec / 2 - kappa0 / 2 * sum(u * u)
    lp <- lp + iw_const + (nu + d + 1) / 2 * logdet_prec - 0.5 * sum(Psi * tcrossprod(ri))
  }
  lp
}

draw_stats <- function(X, prior, p, comps) {
  s <- sort(p, decreasing = TRUE)
  ll <- draw_loglik(X, p, comps)
  lpr <- draw_logprior(prior, p, comps)
  c(pi1 = s[1], pi2 = s[2], pi3 = s[3], loglik = ll, logprior = lpr, logpost = ll + lpr)
}

loop <- function(X, prior, p, z, R) {
  bayesm:::rnmixGibbs_rcpp_loop(X, prior$Mubar, prior$A, prior$nu, prior$V, prior$a,
                                p, z, R, 1L, 0L)
}

mode_stats <- function(D) {
  near <- function(m) as.numeric(apply(abs(sweep(D[, 1:3], 2, m)) <= 0.05, 1, all))
  cbind(D, near_major = near(MAJOR), near_species = near(SPECIES),
        nearer_major = as.numeric(rowSums(sweep(D[, 1:3], 2, MAJOR)^2) <
                                  rowSums(sweep(D[, 1:3], 2, SPECIES)^2)))
}

# One chain: burn-in, then `sweeps` kept sweeps; returns a sweeps x 6 matrix and sampler seconds.
run_chain <- function(X, prior, K, sweeps, burnin, seed) {
  set.seed(seed)
  z <- sample.int(K, nrow(X), replace = TRUE)
  p <- rep(1 / K, K)
  secs <- 0
  out <- NULL
  todo <- c(burnin, rep(CHUNK, sweeps %/% CHUNK), sweeps %% CHUNK)
  for (i in seq_along(todo)) {
    R <- todo[i]
    if (R == 0) next
    t0 <- proc.time()[["elapsed"]]
    res <- loop(X, prior, p, z, R)
    secs <- secs + proc.time()[["elapsed"]] - t0
    p <- res$probdraw[R, ]
    z <- res$zdraw[R, ]
    if (i == 1) next                                     # burn-in
    st <- t(vapply(seq_len(R), function(r) draw_stats(X, prior, res$probdraw[r, ], res$compdraw[[r]]),
                   numeric(6)))
    out <- rbind(out, st)
  }
  list(draws = out, seconds = secs, sweeps = sum(todo))
}

# rnmixGibbs (the exported function) against the chunked loop, from rnmixGibbs's own start.
check_loop <- function(X, prior, K, seed = 1L, R = 60L) {
  N <- nrow(X)
  set.seed(seed)
  capture.output(ref <- rnmixGibbs(Data = list(y = X),
                                   Prior = c(prior[c("Mubar", "A", "nu", "V", "a")], ncomp = K),
                                   Mcmc = list(R = R, keep = 1, nprint = 0))$nmix)
  set.seed(seed)
  z <- rep(seq_len(K), N %/% K + 1)[seq_len(N)]
  a <- loop(X, prior, rep(1 / K, K), z, R / 2)
  b <- loop(X, prior, a$probdraw[R / 2, ], a$zdraw[R / 2, ], R / 2)
  stopifnot(identical(rbind(a$probdraw, b$probdraw), ref$probdraw),
            identical(c(a$compdraw, b$compdraw), ref$compdraw))
}

summarise <- function(draws_by_chain) {
  all <- do.call(rbind, draws_by_chain)
  n <- nrow(draws_by_chain[[1]])
  b <- floor(sqrt(n))
  nb <- n %/% b
  rows <- lapply(colnames(all), function(q) {
    bm <- unlist(lapply(draws_by_chain, function(D) colMeans(matrix(D[seq_len(nb * b), q], nrow = b))))
    mcse <- sqrt(b * var(bm) / nrow(all))
    qs <- quantile(all[, q], c(0.05, 0.25, 0.5, 0.75, 0.95), names = FALSE)
    chain_means <- vapply(draws_by_chain, function(D) mean(D[, q]), 0)
    data.frame(quantity = q, mean = mean(all[, q]), sd = sd(all[, q]),
               ess = if (mcse > 0) var(all[, q]) / mcse^2 else NA_real_, mcse = mcse,
               n_draws = nrow(all), q05 = qs[1], q25 = qs[2], q50 = qs[3], q75 = qs[4], q95 = qs[5],
               t(setNames(chain_means, paste0("chain", seq_along(chain_means)))),
               batch_size = b, check.names = FALSE)
  })
  do.call(rbind, rows)
}

json <- function(x) {
  if (is.list(x)) {
    inner <- vapply(names(x), function(k) sprintf("\"%s\": %s", k, json(x[[k]])), "")
    return(sprintf("{%s}", paste(inner, collapse = ", ")))
  }
  if (is.character(x)) {
    v <- sprintf("\"%s\"", gsub("\"", "\\\\\"", x))
  } else {
    v <- ifelse(is.na(x), "null", sprintf("%.17g", as.numeric(x)))
  }
  if (length(x) == 1 && is.null(dim(x))) v else sprintf("[%s]", paste(v, collapse = ", "))
}

main <- function() {
  for (name in names(SETS)) {
    s <- SETS[[name]]
    X <- as.matrix(read.csv(s$file, check.names = FALSE))
    prior <- default_prior(X, s$K)
    check_loop(X, prior, s$K)
    seeds <- s$seed + seq_len(s$chains) - 1L
    chains <- lapply(seeds, function(seed) run_chain(X, prior, s$K, s$sweeps, s$burnin, seed))
    draws <- lapply(chains, `[[`, "draws")
    if (s$modes) draws <- lapply(draws, mode_stats)
    tab <- cbind(data = name, summarise(draws))
    keep <- seq(s$thin, s$sweeps, by = s$thin)
    thinned <- do.call(rbind, lapply(seq_along(chains), function(ch)
      data.frame(chain = ch, sweep = keep, signif(chains[[ch]]$draws[keep, ], 10))))
    write.csv(thinned, file.path(OUT, paste0(name, "_draws.csv")), row.names = FALSE)
    write.csv(tab, file.path(OUT, paste0(name, "_summary.csv")), row.names = FALSE)
    secs <- vapply(chains, `[[`, 0, "seconds")
    meta <- list(
      data = name, file = s$file, n = nrow(X), d = ncol(X), K = s$K,
      columns = colnames(X), chains = s$chains, seeds = seeds,
      rng = RNGkind(), start = "z ~ uniform labels (sample.int), p = 1/K",
      burnin = s$burnin, sweeps_kept_per_chain = s$sweeps, thin_summaries = 1L,
      thin_draws_csv = s$thin,
      seconds_sampler_per_chain = secs,
      seconds_per_sweep = secs / (s$burnin + s$sweeps),
      note_timing = "sampler loop only (no summaries), proc.time elapsed, one chain at a time on a shared 2-core machine",
      ess_method = "batch means, batch size floor(sqrt(draws per chain)), batches of all chains pooled",
      prior = list(Mubar = c(prior$Mubar), A = c(prior$A), nu = prior$nu, V = c(prior$V), a = prior$a),
      R = R.version.string, bayesm = as.character(packageVersion("bayesm")),
      script = "tests/data/bayesm/make_bayesm.R")
    writeLines(json(meta), file.path(OUT, paste0(name, "_meta.json")))
    cat(sprintf("%s: %.3f ms per sweep\n", name, 1000 * mean(meta$seconds_per_sweep)))
    print(tab[, c("quantity", "mean", "mcse", "ess", "sd", "q50", paste0("chain", 1:s$chains))], digits = 5)
  }
}

if (sys.nframe() == 0L) main()
