# mclust's MAP estimates, for benchmarks/mclust_agreement.py --map.
#
# Run from the repository root:  Rscript tests/data/mclust/make_map_params.R
# (R and mclust from Debian: apt-get install r-base-core r-cran-mclust). Writes
# tests/data/mclust/map_params.csv: for the eight data sets of make_golden.R, the 10 models mclust
# has a conjugate prior for and G = 1..5, the parameters of
# Mclust(X, G, modelNames = model, prior = priorControl()), run to a relative change of 1e-8
# rather than mclust's default 1e-5 (with which 207 of the 395 fits end more than 0.01 from there,
# up to 190 nats for thyroid VEV G = 4): the weights, the means (column-major,
# d x G) and the covariances (column-major, d x d x G), space-separated. The benchmark evaluates
# gmm-suite's log posterior at mclust's mode and at its own, since two fits from different starts
# can end at different local modes.
suppressPackageStartupMessages(library(mclust))

sets <- c(faithful = "models/data/faithful.csv",
          iris = "tests/data/mclust/iris.csv",
          sim3 = "tests/data/mclust/sim3.csv",
          sim2 = "tests/data/mclust/sim2.csv",
          diabetes = "tests/data/mclust/diabetes.csv",
          thyroid = "tests/data/mclust/thyroid.csv",
          banknote = "tests/data/mclust/banknote.csv",
          wreath = "tests/data/mclust/wreath.csv")
models <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")
flat <- function(a) paste(format(as.vector(a), digits = 17), collapse = " ")

rows <- list()
for (name in names(sets)) {
  X <- as.matrix(read.csv(sets[[name]], check.names = FALSE))
  d <- ncol(X)
  for (model in models) {
    for (G in 1:5) {
      fit <- tryCatch(suppressWarnings(Mclust(X, G = G, modelNames = model, verbose = FALSE,
                                              prior = priorControl(),
                                              control = emControl(tol = c(1e-8, sqrt(.Machine$double.eps))))),
                      error = function(e) NULL)
      if (is.null(fit)) next
      p <- fit$parameters
      rows[[length(rows) + 1]] <- data.frame(
        data = name, model = model, G = G, loglik = fit$loglik, pro = flat(rep_len(p$pro, G)),
        mean = flat(p$mean), sigma = flat(array(p$variance$sigma, c(d, d, G))),
        mclust = as.character(packageVersion("mclust")))
    }
  }
}
out <- do.call(rbind, rows)
write.csv(out, "tests/data/mclust/map_params.csv", row.names = FALSE)
cat(sprintf("wrote %d rows to tests/data/mclust/map_params.csv\n", nrow(out)))
