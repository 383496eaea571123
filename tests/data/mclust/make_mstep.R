# mclust's MAP M-step as its EM takes it, for gmm-suite's tests of models.families.
#
# Run from the repository root:  Rscript tests/data/mclust/make_mstep.R
# (R and mclust from Debian: apt-get install r-base-core r-cran-mclust). Writes
# tests/data/mclust/mstep_map.csv: for faithful, iris and sim3, G = 2, 3, 5 and the 10 models mclust
# has a conjugate prior for, the covariances after the first M-step of mclust's EM,
# `me(model, X, z, prior = priorControl(), control = emControl(itmax = 1))` (column-major entries
# of each Sigma_k, one row per k), for fixed responsibilities
# z[n, k] proportional to 1 + 0.9 sin(1.3 n + 2.1 k) (n, k from 1), which tests rebuild in Python.
# G = 1 is what Mclust fits for one component: mvn("XII"), mvn("XXI") or mvn("XXX") by the
# model's shape and orientation (its mstep at G = 1 would use the G-component formulas).
# mclust's `mstep` with a prior differs from its `me` for EEI, EVI and EEV (different counts in
# the denominators); `Mclust` fits with `me`, so this follows `me`.
suppressPackageStartupMessages(library(mclust))

sets <- c(faithful = "models/data/faithful.csv",
          iris = "tests/data/mclust/iris.csv",
          sim3 = "tests/data/mclust/sim3.csv")
models <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")

rows <- list()
for (name in names(sets)) {
  X <- as.matrix(read.csv(sets[[name]], check.names = FALSE))
  n <- nrow(X)
  d <- ncol(X)
  for (G in c(1, 2, 3, 5)) {
    z <- outer(seq_len(n), seq_len(G), function(i, k) 1 + 0.9 * sin(1.3 * i + 2.1 * k))
    z <- z / rowSums(z)
    for (model in models) {
      ms <- if (G == 1) {
        mvn(if (substr(model, 2, 3) == "II") "XII" else if (substr(model, 3, 3) == "I") "XXI"
            else "XXX", X, prior = priorControl())
      } else {
        me(modelName = model, data = X, z = z, prior = priorControl(),
           control = emControl(itmax = 1))
      }
      S <- array(ms$parameters$variance$sigma, c(d, d, G))
      for (k in seq_len(G)) {
        rows[[length(rows) + 1]] <- data.frame(
          data = name, G = G, model = model, k = k, sigma = paste(format(as.vector(S[, , k]),
          digits = 17), collapse = " "), mclust = as.character(packageVersion("mclust")))
      }
    }
  }
}
write.csv(do.call(rbind, rows), "tests/data/mclust/mstep_map.csv", row.names = FALSE)
