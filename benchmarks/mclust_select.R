# mclust's model selection, timed, as the baseline for `gmm select` (issue 29).
#
#   Rscript benchmarks/mclust_select.R data.csv [G_max]
#
# data.csv has a header row; every column is used. Runs Mclust(X, G = 1:G_max) (G_max defaults to
# 9; mclust's default model set, all 14 models for multivariate data) and prints one JSON line:
# wall seconds of the Mclust call alone (not R's start-up or loading mclust: time the whole
# process with /usr/bin/time for that), the chosen model and G, its BIC in mclust's sign (larger is
# better, 2 loglik - df log n), and the whole BIC table as {model: [BIC for G = 1..G_max]}, null
# where mclust could not fit the model.
suppressMessages(library(mclust))

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 1) stop("usage: Rscript benchmarks/mclust_select.R data.csv [G_max]")
X <- as.matrix(read.csv(args[1], check.names = FALSE))
G_max <- if (length(args) >= 2) as.integer(args[2]) else 9L

t0 <- proc.time()[["elapsed"]]
fit <- Mclust(X, G = seq_len(G_max), verbose = FALSE)
seconds <- proc.time()[["elapsed"]] - t0

B <- fit$BIC                                   # G x models, class mclustBIC
num <- function(v) ifelse(is.na(v), "null", sprintf("%.10g", v))
table_json <- paste(vapply(colnames(B), function(m)
  sprintf("\"%s\": [%s]", m, paste(num(B[, m]), collapse = ", ")), ""), collapse = ", ")
cat(sprintf(paste0("{\"data\": \"%s\", \"n\": %d, \"d\": %d, \"G\": [%s], \"seconds_mclust\": %.4f, ",
                   "\"model\": \"%s\", \"G_chosen\": %d, \"bic\": %s, \"loglik\": %s, ",
                   "\"bic_table\": {%s}, \"R\": \"%s\", \"mclust\": \"%s\"}\n"),
            args[1], nrow(X), ncol(X), paste(rownames(B), collapse = ", "), seconds,
            fit$modelName, fit$G, num(fit$bic), num(fit$loglik), table_json,
            R.version.string, as.character(packageVersion("mclust"))))
