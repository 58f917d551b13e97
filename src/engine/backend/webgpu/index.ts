export { createWebGpuBackend, WebGpuBackend, type WebGpuBackendOptions } from './webgpuBackend';
