package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

func newHealthCmd(g *globals) *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check a running server's /health endpoint (exit 0 when healthy)",
		Long: `Check a running server's /health endpoint and exit 0 when it answers
200 with status "ok". Used as the container HEALTHCHECK, where no curl exists.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := &http.Client{Timeout: 3 * time.Second}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, url, nil)
			if err != nil {
				return fmt.Errorf("health: %w", err)
			}
			resp, err := c.Do(req)
			if err != nil {
				return fmt.Errorf("health: %w", err)
			}
			defer resp.Body.Close()
			var h struct {
				Status string `json:"status"`
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &h) != nil || h.Status != "ok" {
				return fmt.Errorf("health: unhealthy (HTTP %d)", resp.StatusCode)
			}
			_, err = fmt.Fprintf(g.stdout, "%s\n", body)
			return err
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://127.0.0.1:8080/health", "health endpoint to check")
	return cmd
}
