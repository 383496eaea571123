# Golden values from R's mclust for gmm-suite's tests.
#
# Run from the repository root:  Rscript tests/data/mclust/make_golden.R
# (tests read the first four data sets; benchmarks/mclust_agreement.py reads all eight)
# (R and mclust from Debian: apt-get install r-base-core r-cran-mclust). Writes
# tests/data/mclust/golden.csv: for each data set, each of mclust's 14 covariance models and
# G = 1..5, maximum likelihood (prior = NULL) and MAP under mclust's default conjugate prior
# (prior = priorControl()), mclust's log-likelihood, number of estimated parameters (df), BIC and
# ICL. mclust's BIC and ICL are 2 log L - df log n (higher is better): gmm-suite's are the
# negatives. A fit mclust cannot make (a singular covariance, or a model its prior does not
# support) has NA values. Each row records how it was made.
suppressPackageStartupMessages(library(mclust))

# mclust's own data sets (numeric columns; the class label dropped), written once for Python
for (name in c("diabetes", "thyroid", "banknote", "wreath")) {
  data(list = name, package = "mclust")
  x <- as.data.frame(get(name))
  x <- x[, vapply(x, is.numeric, logical(1)), drop = FALSE]
  write.csv(x, sprintf("tests/data/mclust/%s.csv", name), row.names = FALSE)
}

sets <- c(faithful = "models/data/faithful.csv",
          iris = "tests/data/mclust/iris.csv",
          sim3 = "tests/data/mclust/sim3.csv",
          sim2 = "tests/data/mclust/sim2.csv",
          diabetes = "tests/data/mclust/diabetes.csv",
          thyroid = "tests/data/mclust/thyroid.csv",
          banknote = "tests/data/mclust/banknote.csv",
          wreath = "tests/data/mclust/wreath.csv")
models <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV",
            "EVV", "VVV")
version <- as.character(packageVersion("mclust"))
hc_use <- mclust.options("hcUse")

rows <- list()
for (name in names(sets)) {
  X <- as.matrix(read.csv(sets[[name]], check.names = FALSE))
  for (prior in c("none", "default")) {
    for (model in models) {
      for (G in 1:5) {
        fit <- tryCatch(
          suppressWarnings(Mclust(X, G = G, modelNames = model, verbose = FALSE,
                                  prior = if (prior == "none") NULL else priorControl())),
          error = function(e) NULL)
        ok <- !is.null(fit)
        rows[[length(rows) + 1]] <- data.frame(
          data = name, n = nrow(X), d = ncol(X), model = model, G = G, prior = prior,
          loglik = if (ok) fit$loglik else NA, df = if (ok) fit$df else NA,
          bic = if (ok) fit$bic else NA, icl = if (ok) icl(fit) else NA,
          call = sprintf("Mclust(X, G = %d, modelNames = \"%s\", prior = %s)", G, model,
                         if (prior == "none") "NULL" else "priorControl()"),
          mclust = version, hcUse = hc_use)
      }
    }
  }
}
out <- do.call(rbind, rows)
write.csv(out, "tests/data/mclust/golden.csv", row.names = FALSE)   # 15 significant digits
cat(sprintf("wrote %d rows (%d fits failed) to tests/data/mclust/golden.csv\n", nrow(out),
            sum(is.na(out$loglik))))

# mclust's hcVVV merge sequence on the first 40 rows of sim3 after hcUse = "SVD" (pasted into
# tests/em/test_init.py):
#   X <- as.matrix(read.csv("tests/data/mclust/sim3.csv"))[1:40, ]
#   Z <- scale(X); S <- svd(Z, nu = 0); Z <- Z %*% S$v %*% diag(1 / sqrt(S$d), 3, 3)
#   apply(t(unclass(hcVVV(Z))), 1, paste, collapse = "-")
