// Pins the third-party CRDs the local control plane installs: Gateway API
// (standard channel) and Istio networking. Only their YAML files are used;
// `go mod download -json` gives the module directory to read them from.
module modeldeploy.io/tools/crds

go 1.26.0

require (
	istio.io/api v1.31.1
	sigs.k8s.io/gateway-api v1.4.1
)
