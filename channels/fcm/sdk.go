package fcm

import (
	"context"
	"errors"
	"reflect"

	"firebase.google.com/go/v4/messaging"
	"google.golang.org/api/option"
)

// newMessaging builds the SDK's messaging client without the SDK's root
// package. firebase.NewApp and App.Messaging do no more than fill an
// internal configuration (project, client options, the SDK's version for
// its X-Firebase-Client header) and call messaging.NewClient with it; but
// importing the root package links every other Firebase service — Cloud
// Firestore and Cloud Storage with gRPC, its xDS balancer and Envoy's
// generated API, 200 packages and 22 MB of the binary — whose package
// initialisation runs in every process, builds protobuf registries on the
// heap and keeps 13 MiB of the binary's pages resident in a dispatcher
// that never calls them. messaging.NewClient's configuration type is
// internal to the SDK, so it is filled here by reflection, by its field
// names; TestNewMessagingFillsTheSDKConfig fails if they change.
func newMessaging(ctx context.Context, projectID string, opts []option.ClientOption) (*messaging.Client, error) {
	newClient := reflect.ValueOf(messaging.NewClient)
	t := newClient.Type()
	if t.NumIn() != 2 || t.In(1).Kind() != reflect.Pointer || t.In(1).Elem().Kind() != reflect.Struct {
		return nil, errors.New("messaging.NewClient's signature is not (context.Context, *config)")
	}
	conf := reflect.New(t.In(1).Elem())
	for name, v := range map[string]any{"ProjectID": projectID, "Opts": opts, "Version": sdkVersion} {
		f := conf.Elem().FieldByName(name)
		if !f.IsValid() || !f.CanSet() || f.Type() != reflect.TypeOf(v) {
			return nil, errors.New("messaging.NewClient's configuration has no field " + name + " of type " + reflect.TypeOf(v).String())
		}
		f.Set(reflect.ValueOf(v))
	}
	out := newClient.Call([]reflect.Value{reflect.ValueOf(ctx), conf})
	if err, _ := out[1].Interface().(error); err != nil {
		return nil, err
	}
	return out[0].Interface().(*messaging.Client), nil
}

// sdkVersion is the linked SDK's version, as its root package's Version
// constant has it; TestNewMessagingFillsTheSDKConfig fails when an
// upgrade changes it.
const sdkVersion = "4.19.0"
