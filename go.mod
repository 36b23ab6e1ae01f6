module github.com/layover-dev/layover

go 1.26.8
