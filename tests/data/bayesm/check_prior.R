# How bayesm's rnmixGibbs prior maps to models.Prior, checked numerically
# (Rscript tests/data/bayesm/check_prior.R from the repo root; about a minute, prints only).
#
# bayesm:  mu_k | Sigma_k ~ N(Mubar, Sigma_k / A),  Sigma_k ~ IW(nu, V) (Sigma^-1 ~ W(nu, V^-1)),
#          pi ~ Dirichlet(a).  Ours: Mubar = m0, A = kappa0, nu = nu0, V = Psi0, a = alpha, with
#          scipy's invwishart(df = nu0, scale = Psi0): E[Sigma] = Psi0 / (nu0 - d - 1),
#          E[Sigma^-1] = nu0 Psi0^-1, E[log|Sigma|] = log|Psi0| - sum_i digamma((nu0 - i + 1)/2) - d log 2.
# Each check prints the Monte-Carlo estimate, the closed form, and the largest |z| (difference / MCSE).
suppressMessages(library(bayesm))
set.seed(20261228)
X <- as.matrix(read.csv("tests/data/mclust/iris.csv"))
d <- ncol(X); K <- 3
m0 <- colMeans(X); kappa0 <- 0.01; nu0 <- d + 2; Psi0 <- cov(X) / K^(2 / d)
Sigma_of <- function(comp) solve(tcrossprod(comp$rooti))   # Sigma^-1 = rooti rooti'
zmax <- function(draws, target) {                     # draws: n x p, target: p
  m <- colMeans(draws); se <- apply(draws, 2, sd) / sqrt(nrow(draws))
  max(abs(m - target) / se)
}
elogdet <- function(nu, V) log(det(V)) - sum(digamma((nu - seq_len(ncol(V)) + 1) / 2)) - ncol(V) * log(2)
report <- function(what, draws, target) {
  cat(sprintf("%-48s max|z| = %5.2f   MC %s\n%-48s            exact %s\n", what, zmax(draws, target),
              paste(sprintf("%9.4f", colMeans(draws)[1:4]), collapse = ""), "",
              paste(sprintf("%9.4f", target[1:4]), collapse = "")))
}

# 1. The prior itself: an empty component in rmixGibbs is drawn from the prior
#    (drawCompsFromLabels' else branch). All of iris in component 1, component 2 empty.
prior_draws <- function(nu, n = 40000) {
  z <- rep(1, nrow(X))
  out <- replicate(n, {
    c2 <- bayesm:::rmixGibbs(X, matrix(m0, 1), matrix(kappa0), nu, Psi0, c(1, 1), c(0.5, 0.5), z)$comps[[2]]
    S <- Sigma_of(c2)
    c(S, solve(S), log(det(S)), c2$mu)
  })
  t(out)
}
for (nu in c(nu0, 20)) {
  D <- prior_draws(nu)
  cat(sprintf("\nprior draws, nu = %g (%d draws)\n", nu, nrow(D)))
  report("E[Sigma^-1] vs nu Psi0^-1 (16 entries)", D[, 17:32], c(nu * solve(Psi0)))
  report("E[log|Sigma|] vs closed form", D[, 33, drop = FALSE], elogdet(nu, Psi0))
  report("E[mu] vs m0", D[, 34:37], m0)
  if (nu > d + 3) {   # Var(Sigma) is infinite for nu <= d + 3: check the mean only here
    report("E[Sigma] vs Psi0/(nu - d - 1) (16 entries)", D[, 1:16], c(Psi0 / (nu - d - 1)))
    # Cov(mu) = E[Sigma] / A
    report("diag Cov(mu) (x kappa0) vs diag E[Sigma]", (sweep(D[, 34:37], 2, m0))^2 * kappa0,
           diag(Psi0) / (nu - d - 1))
  }
}

# 2. The conditional given labels: rmultireg (what drawCompsFromLabels calls) on setosa's 50 rows,
#    against the conjugate update kappa_n = kappa0 + n, m_n = (kappa0 m0 + n ybar) / kappa_n,
#    nu_n = nu0 + n, Psi_n = Psi0 + S + kappa0 n / kappa_n (ybar - m0)(ybar - m0)'.
Y <- X[1:50, ]; n <- nrow(Y); ybar <- colMeans(Y)
kn <- kappa0 + n; mn <- (kappa0 * m0 + n * ybar) / kn; nun <- nu0 + n
Psin <- Psi0 + crossprod(sweep(Y, 2, ybar)) + kappa0 * n / kn * tcrossprod(ybar - m0)
D <- t(replicate(40000, {
  r <- rmultireg(Y, matrix(1, n, 1), matrix(m0, 1), matrix(kappa0), nu0, Psi0)
  c(r$Sigma, r$B, (r$B - mn)^2 * kn)
}))
cat(sprintf("\nconditional draws given setosa's labels (%d draws)\n", nrow(D)))
report("E[Sigma] vs Psi_n/(nu_n - d - 1)", D[, 1:16], c(Psin / (nun - d - 1)))
report("E[mu] vs m_n", D[, 17:20], mn)
report("diag Cov(mu) x kappa_n vs diag E[Sigma]", D[, 21:24], diag(Psin) / (nun - d - 1))

# 3. bayesm 3.1-5's C++ takes nu as a double (older sources on CRAN's mirror declare int nu, which
#    would truncate a fractional nu0): E[W] = nu V for rwishart(nu, V), so a mean of 6.5 means no
#    truncation.
W <- t(replicate(40000, c(rwishart(6.5, diag(2))$W)))
cat(sprintf("\nrwishart(6.5, I): mean diag(W) = %.3f, %.3f (6.5 if used as given, 6 if truncated; MCSE %.3f)\n",
            mean(W[, 1]), mean(W[, 4]), sd(W[, 1]) / sqrt(nrow(W))))
