"""How the project runs on a cluster: Kubernetes manifests rendered from the settings."""
