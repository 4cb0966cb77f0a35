// Command gmsa-webhook-standin is the lab's stand-in for the windows-gmsa admission webhook
// (kubernetes-sigs/windows-gmsa admission-webhook v0.13.0), written for this project from the
// documented behaviour in shared/UPSTREAM.md, because the Go module proxy reachable here refuses
// that module (403 "not available"). It keeps the same outside interface, so the lab exercises the
// real admission flow of kube-apiserver:
//
//   - environment TLS_CRT, TLS_KEY (required), HTTPS_PORT (default 443), RANDOM_HOSTNAME;
//     extra for the lab: BIND_ADDRESS (default 127.0.0.1; upstream listens on all interfaces);
//   - in-cluster configuration only (KUBERNETES_SERVICE_HOST/PORT and the service-account token
//     and ca.crt under /var/run/secrets/kubernetes.io/serviceaccount/);
//   - routes /mutate, /validate (admission.k8s.io/v1 AdmissionReview), /health (204);
//   - mutate (pods CREATE): fills windowsOptions.gmsaCredentialSpec at pod and container level from
//     the cluster-scoped GMSACredentialSpec named by gmsaCredentialSpecName (its compact JSON
//     "credspec"); a missing resource is refused with 404;
//   - validate (pods CREATE): LocalSubjectAccessReview for system:serviceaccount:<ns>:<sa>, verb use,
//     windows.k8s.io gmsacredentialspecs <name>: refused with 403; contents that differ from the
//     resource or contents without a name: 422. UPDATE: changing the name or contents: 403.
//     Init and ephemeral containers are not covered (as in v0.13.0).
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

var credSpecResource = schema.GroupVersionResource{Group: "windows.k8s.io", Version: "v1", Resource: "gmsacredentialspecs"}

type admissionError struct {
	code int
	msg  string
}

func (e *admissionError) Error() string { return e.msg }

func deny(code int, format string, args ...any) *admissionError {
	return &admissionError{code: code, msg: fmt.Sprintf(format, args...)}
}

type server struct {
	kube           kubernetes.Interface
	dyn            dynamic.Interface
	randomHostname bool
}

// windowsOptions visits the pod-level and each container's windowsOptions (when set).
func windowsOptions(pod *corev1.Pod, visit func(opts *corev1.WindowsSecurityContextOptions, kind, name, path string) *admissionError) *admissionError {
	if sc := pod.Spec.SecurityContext; sc != nil && sc.WindowsOptions != nil {
		if err := visit(sc.WindowsOptions, "pod", pod.Name, "/spec/securityContext/windowsOptions"); err != nil {
			return err
		}
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if c.SecurityContext != nil && c.SecurityContext.WindowsOptions != nil {
			path := fmt.Sprintf("/spec/containers/%d/securityContext/windowsOptions", i)
			if err := visit(c.SecurityContext.WindowsOptions, "container", c.Name, path); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *server) credSpecContents(ctx context.Context, name string) (string, *admissionError) {
	obj, err := s.dyn.Resource(credSpecResource).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return "", deny(http.StatusNotFound, "cred spec %s does not exist", name)
		}
		return "", deny(http.StatusInternalServerError, "unable to fetch cred spec %s: %v", name, err)
	}
	spec, found, err := unstructured.NestedFieldNoCopy(obj.Object, "credspec")
	if err != nil || !found {
		return "", deny(http.StatusNotFound, "cred spec %s does not contain a 'credspec' key", name)
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return "", deny(http.StatusInternalServerError, "unable to marshal cred spec %s: %v", name, err)
	}
	return string(raw), nil
}

func (s *server) authorized(ctx context.Context, sa, namespace, name string) (bool, string) {
	if sa == "" {
		sa = "default"
	}
	review := &authorizationv1.LocalSubjectAccessReview{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace},
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: fmt.Sprintf("system:serviceaccount:%s:%s", namespace, sa),
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: namespace, Verb: "use", Group: "windows.k8s.io",
				Resource: "gmsacredentialspecs", Name: name,
			},
		},
	}
	resp, err := s.kube.AuthorizationV1().LocalSubjectAccessReviews(namespace).Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return false, err.Error()
	}
	return resp.Status.Allowed, resp.Status.Reason
}

func sameJSON(a, b string) bool {
	if a == b {
		return true
	}
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func (s *server) validateCreate(ctx context.Context, pod *corev1.Pod, namespace string) *admissionError {
	return windowsOptions(pod, func(o *corev1.WindowsSecurityContextOptions, kind, name, _ string) *admissionError {
		if o.GMSACredentialSpecName == nil {
			if o.GMSACredentialSpec != nil {
				return deny(http.StatusUnprocessableEntity, "%s %q has a GMSA cred spec set, but does not define the name of the corresponding resource", kind, name)
			}
			return nil
		}
		spec := *o.GMSACredentialSpecName
		if ok, reason := s.authorized(ctx, pod.Spec.ServiceAccountName, namespace, spec); !ok {
			msg := fmt.Sprintf("service account %q is not authorized to `use` GMSA cred spec %q", pod.Spec.ServiceAccountName, spec)
			if reason != "" {
				msg += fmt.Sprintf(", reason: %q", reason)
			}
			return deny(http.StatusForbidden, "%s", msg)
		}
		if o.GMSACredentialSpec != nil {
			expected, err := s.credSpecContents(ctx, spec)
			if err != nil {
				return err
			}
			if !sameJSON(*o.GMSACredentialSpec, expected) {
				return deny(http.StatusUnprocessableEntity, "the GMSA cred spec contents for %s %q does not match the contents of GMSA resource %q", kind, name, spec)
			}
		}
		return nil
	})
}

func (s *server) validateUpdate(pod, old *corev1.Pod) *admissionError {
	oldOpts := map[string]*corev1.WindowsSecurityContextOptions{}
	_ = windowsOptions(old, func(o *corev1.WindowsSecurityContextOptions, kind, name, _ string) *admissionError {
		oldOpts[kind+"/"+name] = o
		return nil
	})
	ptrEq := func(a, b *string) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }
	return windowsOptions(pod, func(o *corev1.WindowsSecurityContextOptions, kind, name, _ string) *admissionError {
		prev := oldOpts[kind+"/"+name]
		if prev == nil {
			prev = &corev1.WindowsSecurityContextOptions{}
		}
		if !ptrEq(o.GMSACredentialSpecName, prev.GMSACredentialSpecName) {
			return deny(http.StatusForbidden, "cannot update an existing pod's GMSA settings (GMSA name modified on %s %q)", kind, name)
		}
		if !ptrEq(o.GMSACredentialSpec, prev.GMSACredentialSpec) {
			return deny(http.StatusForbidden, "cannot update an existing pod's GMSA settings (GMSA contents modified on %s %q)", kind, name)
		}
		return nil
	})
}

func randomHostname() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

func (s *server) mutateCreate(ctx context.Context, pod *corev1.Pod) ([]map[string]string, *admissionError) {
	var patches []map[string]string
	hasGMSA := false
	err := windowsOptions(pod, func(o *corev1.WindowsSecurityContextOptions, _, _, path string) *admissionError {
		if o.GMSACredentialSpecName == nil {
			return nil
		}
		hasGMSA = true
		if o.GMSACredentialSpec != nil {
			return nil // left to /validate
		}
		contents, err := s.credSpecContents(ctx, *o.GMSACredentialSpecName)
		if err != nil {
			return err
		}
		patches = append(patches, map[string]string{"op": "add", "path": path + "/gmsaCredentialSpec", "value": contents})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if hasGMSA && s.randomHostname && pod.Spec.Hostname == "" {
		patches = append(patches, map[string]string{"op": "add", "path": "/spec/hostname", "value": randomHostname()})
	}
	return patches, nil
}

func (s *server) review(ctx context.Context, req *admissionv1.AdmissionRequest, mutate bool) *admissionv1.AdmissionResponse {
	fail := func(e *admissionError) *admissionv1.AdmissionResponse {
		log.Printf("denied %s %s/%s: %d %s", req.Operation, req.Namespace, req.Name, e.code, e.msg)
		return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
			Status: metav1.StatusFailure, Message: e.msg, Code: int32(e.code)}}
	}
	if req.Kind.Kind != "Pod" {
		return fail(deny(http.StatusBadRequest, "expected a Pod object, got a %v", req.Kind.Kind))
	}
	pod := &corev1.Pod{}
	if err := json.Unmarshal(req.Object.Raw, pod); err != nil {
		return fail(deny(http.StatusBadRequest, "unable to unmarshal pod JSON object: %v", err))
	}
	allowed := &admissionv1.AdmissionResponse{Allowed: true}
	switch req.Operation {
	case admissionv1.Create:
		if mutate {
			patches, err := s.mutateCreate(ctx, pod)
			if err != nil {
				return fail(err)
			}
			if len(patches) > 0 {
				raw, _ := json.Marshal(patches)
				pt := admissionv1.PatchTypeJSONPatch
				allowed.Patch, allowed.PatchType = raw, &pt
			}
			return allowed
		}
		if err := s.validateCreate(ctx, pod, req.Namespace); err != nil {
			return fail(err)
		}
		return allowed
	case admissionv1.Update:
		if mutate {
			return allowed
		}
		old := &corev1.Pod{}
		if err := json.Unmarshal(req.OldObject.Raw, old); err != nil {
			return fail(deny(http.StatusBadRequest, "unable to unmarshal old pod JSON object: %v", err))
		}
		if err := s.validateUpdate(pod, old); err != nil {
			return fail(err)
		}
		return allowed
	default:
		return fail(deny(http.StatusBadRequest, "unexpected operation %s", req.Operation))
	}
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var mutate bool
	switch r.URL.Path {
	case "/health":
		w.WriteHeader(http.StatusNoContent)
		return
	case "/mutate":
		mutate = true
	case "/validate":
	default:
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	in := admissionv1.AdmissionReview{}
	var resp *admissionv1.AdmissionResponse
	if err := json.Unmarshal(body, &in); err != nil || in.Request == nil {
		resp = &admissionv1.AdmissionResponse{Result: &metav1.Status{Status: metav1.StatusFailure,
			Code: http.StatusBadRequest, Message: "request body is not an AdmissionReview with a request"}}
	} else {
		resp = s.review(r.Context(), in.Request, mutate)
		resp.UID = in.Request.UID
	}
	out := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{Kind: "AdmissionReview", APIVersion: "admission.k8s.io/v1"},
		Response: resp,
	}
	raw, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(raw)
}

func main() {
	crt, key := os.Getenv("TLS_CRT"), os.Getenv("TLS_KEY")
	if crt == "" || key == "" {
		panic(errors.New("TLS_CRT and TLS_KEY must be set"))
	}
	port := os.Getenv("HTTPS_PORT")
	if port == "" {
		port = "443"
	}
	bind := os.Getenv("BIND_ADDRESS")
	if bind == "" {
		bind = "127.0.0.1"
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		panic(err)
	}
	s := &server{
		kube:           kubernetes.NewForConfigOrDie(cfg),
		dyn:            dynamic.NewForConfigOrDie(cfg),
		randomHostname: strings.EqualFold(os.Getenv("RANDOM_HOSTNAME"), "true"),
	}
	srv := &http.Server{Addr: net.JoinHostPort(bind, port), Handler: s, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("gmsa-webhook-standin listening on https://%s", srv.Addr)
	log.Fatal(srv.ListenAndServeTLS(crt, key))
}
