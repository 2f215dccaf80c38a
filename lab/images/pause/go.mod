module kubeproof.local/lab/pause

go 1.22
