# Data files written the way R writes them, for tests/reports/test_io.py (issue 29).
#
# Run from the repository root:  Rscript tests/data/csv/make_files.R
# (R from Debian: apt-get install r-base-core). Each file holds the same 5 x 3 table (the test's
# TABLE), the cell at row 2, column "b" missing where the name says "na"; R writes 15
# significant digits, enough for these values to read back exactly.
x <- data.frame(a = c(5.1, -0.25, 0.001, 12345.678, 3.14159265358979),
                b = c(1, 2.5, -3, 1e-20, 7),
                `c d` = c(10, 20, 30, 40, 50), check.names = FALSE)
out <- "tests/data/csv"
write.csv(x, file.path(out, "write_csv.csv"))
na <- x
na[2, "b"] <- NA
write.csv(na, file.path(out, "write_csv_na.csv"))
named <- x
rownames(named) <- c("Mazda RX4", "Datsun 710", "Valiant", "Duster 360", "Merc 240D")
write.csv(named, file.path(out, "write_csv_rownames.csv"))
write.csv2(x, file.path(out, "write_csv2.csv"))
write.table(x, file.path(out, "write_table.txt"))
write.table(x, file.path(out, "write_table_tab.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
# 200 x 3 random numbers in write.csv2's form (decimal commas, semicolons, row names, two NA),
# and the doubles R's read.csv2 reads back from that file, in hex (C99 %a), exact
set.seed(30)
y <- data.frame(u = rnorm(200) * 1e3, v = rexp(200) / 7, w = runif(200))
y$v[c(3, 50)] <- NA
write.csv2(y, file.path(out, "write_csv2_200.csv"))
back <- as.matrix(read.csv2(file.path(out, "write_csv2_200.csv"), row.names = 1))
writeLines(sprintf("%a", back), file.path(out, "write_csv2_200_doubles.txt"))
