module contextbench

go 1.19
