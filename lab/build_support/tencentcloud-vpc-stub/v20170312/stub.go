// Package v20170312 stands in for the Tencent Cloud VPC SDK when kubeproof builds flanneld.
//
// Why: flannel v0.28.10 links its "tencentvpc" backend unconditionally, and the Go module proxy
// reachable from the lab build refuses the zip of
// github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc v1.3.188 (403 "This module version
// is not available"; every nearby version too). The lab runs flannel's vxlan backend only, so this
// stub provides just the API that backend's code references; every call fails with errStubbed.
// Selecting backend "tencent-vpc" in a lab-built flanneld therefore fails at start, loudly.
package v20170312

import "errors"

var errStubbed = errors.New("tencent-vpc backend is not available: kubeproof built flanneld with a stubbed Tencent Cloud VPC SDK")

type Client struct{}

func NewClientWithSecretId(secretID, secretKey, region string) (*Client, error) {
	return nil, errStubbed
}

type Filter struct {
	Name   *string
	Values []*string
}

type Route struct {
	DestinationCidrBlock *string
	GatewayType          *string
	GatewayId            *string
	RouteId              *uint64
	Enabled              *bool
	RouteType            *string
}

type RouteTable struct {
	RouteTableId *string
	RouteSet     []*Route
}

type DescribeRouteTablesRequest struct {
	Filters []*Filter
}

type DescribeRouteTablesResponse struct {
	Response *struct {
		RouteTableSet []*RouteTable
	}
}

type DeleteRoutesRequest struct {
	RouteTableId *string
	Routes       []*Route
}

type DeleteRoutesResponse struct{}

type CreateRoutesRequest struct {
	RouteTableId *string
	Routes       []*Route
}

type CreateRoutesResponse struct{}

func NewDescribeRouteTablesRequest() *DescribeRouteTablesRequest { return &DescribeRouteTablesRequest{} }

func NewDeleteRoutesRequest() *DeleteRoutesRequest { return &DeleteRoutesRequest{} }

func NewCreateRoutesRequest() *CreateRoutesRequest { return &CreateRoutesRequest{} }

func (c *Client) DescribeRouteTables(request *DescribeRouteTablesRequest) (*DescribeRouteTablesResponse, error) {
	return nil, errStubbed
}

func (c *Client) DeleteRoutes(request *DeleteRoutesRequest) (*DeleteRoutesResponse, error) {
	return nil, errStubbed
}

func (c *Client) CreateRoutes(request *CreateRoutesRequest) (*CreateRoutesResponse, error) {
	return nil, errStubbed
}
