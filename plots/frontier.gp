# frontier.gp: one speed-vs-accuracy (or size-vs-accuracy) figure of a sweep, drawn by `arbor plot`.
# Variables (gnuplot -e): points, frontier (data files written by arbor plot), out, term (pngcairo|pdfcairo),
# xlabel, ylabel, title, logx (1 for a log x axis).
# points columns: x y "label" kind (0 pruned+distilled, 1 from scratch, 2 teacher, 3 baseline,
# 4 the same pruned model before distillation)
if (term eq "pdfcairo") { set terminal pdfcairo size 6in,4in font "Helvetica,10" } else { set terminal pngcairo size 1200,800 font "Helvetica,12" }
set output out
set title title
set xlabel xlabel
set ylabel ylabel
set grid
set key outside right top
if (logx == 1) { set logscale x }
set offsets graph 0.05, graph 0.15, graph 0.08, graph 0.08
plot frontier using 1:2 with linespoints lw 2 pt 6 ps 2.5 lc rgb "#888888" title "Pareto frontier", \
     points using ($4 == 4 ? $1 : 1/0):2 with points pt 6 ps 1.5 lc rgb "#1f77b4" title "pruned, before distillation", \
     points using ($4 == 0 ? $1 : 1/0):2 with points pt 7 ps 1.5 lc rgb "#1f77b4" title "pruned + distilled", \
     points using ($4 == 1 ? $1 : 1/0):2 with points pt 5 ps 1.5 lc rgb "#ff7f0e" title "trained from scratch", \
     points using ($4 == 2 ? $1 : 1/0):2 with points pt 9 ps 2.2 lc rgb "#d62728" title "teacher", \
     points using ($4 == 3 ? $1 : 1/0):2 with points pt 13 ps 2.0 lc rgb "#2ca02c" title "baseline", \
     points using 1:2:3 with labels offset char 0,1.1 font ",9" notitle
