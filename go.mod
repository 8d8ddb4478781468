module sockfs

go 1.26.0

require (
	github.com/songgao/water v0.0.0-20200317203138-2b4b6d7c09d8
	golang.org/x/sys v0.49.0
)

require bazil.org/fuse v0.0.0-20230120002735-62a210ff1fd5
